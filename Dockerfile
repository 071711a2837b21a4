FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY sql ./sql
RUN pip install --no-cache-dir . && useradd --system relay
USER relay
EXPOSE 8000
CMD ["relay", "api", "--host", "0.0.0.0", "--port", "8000"]
