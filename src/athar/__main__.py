from athar.cli.main import run

run()
