"""The engine: schemas, backends, generation, storage, export. Never imports Textual."""
