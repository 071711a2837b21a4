"""The dashboard (F38): server-rendered pages under `/ui`, scoped to the signed-in user's tenant like the API."""
