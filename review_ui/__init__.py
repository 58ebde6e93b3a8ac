"""The review workbench: calibrated people correct pre-annotated dialogue turns."""
