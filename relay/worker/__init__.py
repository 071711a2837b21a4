"""The worker process: the delivery dispatcher plus procrastinate for periodic and background jobs."""
