"""IVR prompts: the catalogue of texts (catalogue.py) and their rendering to 8 kHz audio (build.py)."""
