"""One module per `contexten` subcommand, each exposing a Typer `app`."""
