"""The ``typing`` names the core's annotations use, without importing ``typing`` at run time
(a fifth of a ``python -c pass``, on every ``traffic status``).

Type checkers see ``typing``'s own names. The running program sees ``object`` for ``Any`` and
``Protocol``, all that annotations and protocol classes need while running: no protocol here is
checked with ``isinstance`` and nothing reads the annotations as types.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any as Any
    from typing import Protocol as Protocol
    from typing import dataclass_transform as dataclass_transform
else:
    Any = Protocol = object

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls
