"""`python -m sam2r.compat SCRIPT.py [ARGS ...]`: run a script written for the official `sam2`
with `import sam2` resolving to `sam2r.compat` (see `sam2r.compat.run`)."""

from sam2r.compat.run import main

if __name__ == "__main__":
    main()
