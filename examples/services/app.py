"""One service of the multi-service demo: a FastAPI app traced with ferrotrace.

    python examples/services/app.py --service api-gateway --port 8001 \
        --downstream auth=http://127.0.0.1:8002 --downstream data=http://127.0.0.1:8003 \
        --output-dir demo-traces/services

The architecture of the seeds: frontend -> api-gateway -> (auth, data -> database).
Every service writes its own JSONL files (named after the service and pid) into
the shared output directory; trace context travels in W3C `traceparent` headers.
"""

from __future__ import annotations

import argparse
import asyncio
import random

import ferrotrace as ft
import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from ferrotrace.asgi import TracingMiddleware


def build_app(service: str, downstream: dict[str, str]) -> FastAPI:
    app = FastAPI(title=service)
    app.add_middleware(TracingMiddleware, exclude_paths=["/health"])
    client = httpx.AsyncClient(timeout=10.0)
    ft.instrument_httpx(client)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def call(name: str, method: str, path: str, **kwargs) -> httpx.Response:
        return await client.request(method, downstream[name] + path, **kwargs)

    if service == "frontend":

        @app.get("/page/{user_id}")
        async def page(user_id: int) -> dict:
            response = await call("api-gateway", "GET", f"/api/users/{user_id}")
            if response.status_code >= 400:
                raise HTTPException(status_code=502, detail="gateway failed")
            return {"page": "profile", "user": response.json()}

    elif service == "api-gateway":

        @app.get("/api/users/{user_id}")
        async def user(user_id: int) -> dict:
            auth = await call("auth", "GET", "/auth/verify", params={"user": user_id})
            if auth.status_code != 200:
                raise HTTPException(status_code=auth.status_code, detail="not authorised")
            data = await call("data", "GET", f"/data/users/{user_id}")
            if data.status_code >= 400:
                raise HTTPException(status_code=502, detail="data service failed")
            return data.json()

    elif service == "auth":

        @app.get("/auth/verify")
        async def verify(user: int) -> dict:
            with ft.get_tracer().start_span("auth.check_token") as span:
                span.set_tag("enduser.id", str(user))
                await asyncio.sleep(random.uniform(0.001, 0.003))
                if user % 17 == 0:
                    span.set_status("error")
                    span.log("token expired", level="warning", user=user)
                    raise HTTPException(status_code=401, detail="token expired")
            return {"user": user, "ok": True}

    elif service == "data":

        @app.get("/data/users/{user_id}")
        async def load(user_id: int) -> dict:
            rows = await call(
                "database", "POST", "/db/query", json={"table": "users", "id": user_id}
            )
            if rows.status_code >= 400:
                raise HTTPException(status_code=502, detail="database failed")
            return {"id": user_id, "rows": rows.json()["rows"]}

        @app.get("/data/export")
        async def export() -> StreamingResponse:
            async def chunks():
                for i in range(5):
                    await asyncio.sleep(0.002)
                    yield f"row {i}\n".encode()

            return StreamingResponse(chunks(), media_type="text/plain")

    elif service == "database":

        @app.post("/db/query")
        async def query(request: Request) -> dict:
            body = await request.json()
            user_id = int(body.get("id", 0))
            tags = {"db.system": "postgresql", "peer.service": "postgres"}
            try:
                with ft.get_tracer().start_span("SELECT users", kind="client", tags=tags) as span:
                    span.set_tag("db.statement", "SELECT * FROM users WHERE id = $1")
                    delay = 0.15 if user_id % 50 == 0 else random.uniform(0.001, 0.005)
                    await asyncio.sleep(delay)
                    if user_id % 23 == 0:
                        raise RuntimeError(f"deadlock detected while reading user {user_id}")
            except RuntimeError as exc:  # recorded on the span by the `with` block
                raise HTTPException(status_code=500, detail=str(exc)) from exc
            return {"rows": [{"id": user_id, "name": f"user-{user_id}"}]}

    else:
        raise SystemExit(f"unknown service {service!r}")
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output-dir", default="demo-traces/services")
    parser.add_argument("--downstream", action="append", default=[], metavar="NAME=URL")
    args = parser.parse_args()
    downstream = dict(item.split("=", 1) for item in args.downstream)
    ft.configure(service_name=args.service, output_dir=args.output_dir, flush_interval_ms=200)
    app = build_app(args.service, downstream)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
