"""The web playground: ``adamlab serve`` (or ``python -m adamlab.serve``) starts a local page
whose every number is computed by adamlab itself.

* :mod:`.app`: the ASGI app (Starlette): the page, its static files and the JSON API;
* :mod:`.request`: what the API accepts (the ``adamlab compare`` vocabulary) and the limits;
* :mod:`.catalog`: the one adapter into the library (listings, runs, exports);
* :mod:`.workers`: worker processes that run the comparisons under a time limit;
* :mod:`.command`: :func:`run` and :func:`add_arguments` for the ``adamlab serve`` command.

The web packages (Starlette, uvicorn) are an extra: ``pip install 'adamlab[serve]'``.
Importing this package does not import them; :func:`create_app` and :func:`run` do.
"""

from typing import Any

from .command import add_arguments, main, run, running


def create_app(**kwargs: Any) -> Any:
    """The ASGI app (see :func:`adamlab.serve.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(**kwargs)


__all__ = ["add_arguments", "create_app", "main", "run", "running"]
