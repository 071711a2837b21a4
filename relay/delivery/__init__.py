"""The delivery engine: claim a batch of due deliveries, send them, classify, record."""
