"""Documents: text extraction with pages kept (PDF and text files) and token-sized chunks."""
