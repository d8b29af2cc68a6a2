"""Where GROBID TEI, PDF text and thumbnails go: Kafka topics, or files in the work directory."""
