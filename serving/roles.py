"""The roles an API key can carry (serving.auth grants their permissions). No imports beyond typing: the
`medcode keys` command lists them whenever `medcode` starts."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["coder", "integration", "scientist", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
