from athar.cli.commands import run

# Guarded: worker processes (spawned by the audit) import this module again.
if __name__ == "__main__":
    run()
