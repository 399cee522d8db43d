"""Stream ingestion: ``featurestore stream`` consumes the repository's stream sources."""
