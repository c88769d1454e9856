"""The team web application: a thin, server-rendered face over the vault and records
services (see docs/web.md). Start it with `athar.web.app.create_app` or `athar serve`."""
