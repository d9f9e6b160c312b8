"""`python -m cugraphllm ...`: see cugraphllm/cli.py."""
from .cli import main

raise SystemExit(main())
