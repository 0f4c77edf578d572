"""The one error the playground's API answers with: a 4xx status and a JSON body
``{"error": message, "field": name}`` (plus ``"key"``: the hyperparameter, where known).

The message is the library's own where the library refused the input (``Invalid beta2
(betas[1]): 1.0; it must lie in [0, 1)``), or the playground's where one of its limits did.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the playground will not run, with the HTTP status and the field at fault.

    ``field`` names the request field (``"opt[1]"``, ``"steps"``, ``"problem"``, ...) or is
    None when the request as a whole is at fault; ``key`` names the hyperparameter inside an
    optimizer spec when the library's refusal can be pinned to one.
    """

    def __init__(
        self, status: int, message: str, field: str | None = None, key: str | None = None
    ) -> None:
        super().__init__(status, message, field, key)  # picklable: the args rebuild it
        self.status, self.message, self.field, self.key = status, message, field, key

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "field": self.field}
        if self.key is not None:
            out["key"] = self.key
        return out

    def __str__(self) -> str:
        return self.message
