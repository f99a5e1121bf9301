"""Scripts (the demo); a package only so the import contracts (.importlinter) see them."""
