"""Framework adapters, one module per framework; each is imported only when its framework is.

``autotrack.autolog()`` enables them through post-import hooks; each module also offers an
``AutotrackCallback`` (scikit-learn, which has no callback API, offers ``autolog()``).
"""

__all__: list[str] = []
