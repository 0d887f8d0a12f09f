"""`python -m local.stack`, held just before it seeds the founder until a line comes on stdin.

For the readiness test: it shows what a client gets while the stack is not ready yet.
"""

from __future__ import annotations

import sys
from typing import Any

from local import stack

SEEDING = "SALON_STACK_SEEDING"


def main() -> None:
    seed = stack.LocalStack._seed_founder

    def held(self: stack.LocalStack, app: Any) -> dict[str, Any]:
        print(SEEDING, flush=True)
        sys.stdin.readline()
        return seed(self, app)

    stack.LocalStack._seed_founder = held  # type: ignore[method-assign]
    stack.main(sys.argv[1:])


if __name__ == "__main__":
    main()
