"""reviews: Product reviews and rating summaries."""
