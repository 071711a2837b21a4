"""`relay bench`: drive the real API and worker over HTTP and measure them."""
