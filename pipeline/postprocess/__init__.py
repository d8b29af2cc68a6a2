"""Work done on each ingested PDF after its bytes are known: GROBID and text extraction."""
