"""The Batch REST API over HTTP: each handler parses, makes one state call and serializes.

Every request passes ``_wrap`` first: api-version, then SharedKey, in the order the
service checks them; a ``BatchServiceError`` raised anywhere becomes the service's error
body with its status, and any other exception is logged with its traceback and answered
as the service's 500 InternalError. Documents come from ``serialize``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from emulator import conditions, errors, odata, queryable, serialize, wire
from emulator.auth import SharedKeyVerifier
from emulator.executor import node_root, task_directory
from emulator.numbers import numbers
from emulator.records import Entity, Task
from emulator.state import BatchState

Handler = Callable[[Request], Awaitable[Response]]
Document = dict[str, Any]
log = logging.getLogger(__name__)


class Api:
    def __init__(
        self,
        state: BatchState,
        verifier: SharedKeyVerifier,
        data: Path,
        request_log: TextIO | None = None,
    ) -> None:
        self.state = state
        self.verifier = verifier
        self.data = data
        self.request_log = request_log  # one line per request: method, path, status

    # --- plumbing -----------------------------------------------------------------------

    def _wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            try:
                wire.check_api_version(request.query_params.get("api-version"))
                self.verifier.verify(request.method, _as_sent(request), request.headers)
                response = await handler(request)
            except errors.BatchServiceError as error:
                response = self._error(error, request_id)
            except Exception as error:  # anything else is the service's 500
                log.exception(
                    "%s %s failed (request %s)", request.method, request.url.path, request_id
                )
                response = self._error(errors.InternalError(str(error)), request_id)
            response.headers["request-id"] = request_id
            client_request_id = request.headers.get("client-request-id")
            echo = request.headers.get("return-client-request-id", "").lower() == "true"
            if client_request_id and echo:  # as the service: only when asked to
                response.headers["client-request-id"] = client_request_id
            response.headers["DataServiceVersion"] = "3.0"
            if self.request_log is not None:
                self.request_log.write(
                    f"{request.method} {request.url.path} {response.status_code}\n"
                )
                self.request_log.flush()
            return response

        return endpoint

    def _error(self, error: errors.BatchServiceError, request_id: str) -> Response:
        body = error.render(self.state.account_url, request_id, wire.timestamp(datetime.now(UTC)))
        return JSONResponse(body, status_code=error.status, media_type=wire.JSON_CONTENT_TYPE)

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        wire.check_body_size(len(raw))
        try:
            return numbers(json.loads(raw))  # "1" for 1, as the service reads it
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidRequestBody() from None

    def _entity(
        self, record: Entity, document: Document, collection: str, request: Request
    ) -> Response:
        names = odata.properties(request.query_params.get("$select"), queryable.listing(collection))
        body = {
            "odata.metadata": f"{self.state.account_url}/$metadata#{collection}/@Element",
            **odata.select(document, names),
        }
        return JSONResponse(body, media_type=wire.JSON_CONTENT_TYPE, headers=_versioned(record))

    def _list(
        self,
        items: Sequence[Any],
        collection: str,
        request: Request,
        render: Callable[[Any], Document] = lambda document: document,
    ) -> Response:
        """A page of ``items`` as wire documents, in the collection's order (its id, or
        ``queryable.Listing.order``), after the key the ``$skiptoken`` holds. Only the page's
        items (and, with a $filter, those tested on the way) are rendered."""
        query = request.query_params
        listing = queryable.listing(collection)
        text = query.get("$filter")
        predicate = odata.compile_filter(text, listing) if text else None
        names = odata.properties(query.get("$select"), listing)
        limit = odata.max_results(query.get("maxresults"))
        after = odata.skip_token(query.get("$skiptoken"))
        page, last = odata.page(items, listing, limit, after, render, predicate)
        body: dict[str, Any] = {
            "odata.metadata": f"{self.state.account_url}/$metadata#{collection}",
            "value": [odata.select(d, names) for d in page],
        }
        if last is not None:
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            params["$skiptoken"] = odata.next_token(last)
            body["odata.nextLink"] = (
                f"{self.state.account_url}{request.url.path}?{urlencode(params, quote_via=quote)}"
            )
        return JSONResponse(body, media_type=wire.JSON_CONTENT_TYPE)

    def _created(self, record: Entity) -> Response:
        headers = {**_versioned(record), "DataServiceId": record.url, "Location": record.url}
        return Response(status_code=201, headers=headers)

    @staticmethod
    def _precondition(record: Entity, request: Request) -> None:
        """Refuse a write whose conditional headers do not hold (412), before it acts."""
        conditions.check(request.headers, record.etag, record.last_modified, read=False)

    @staticmethod
    def _not_modified(record: Entity, request: Request) -> Response | None:
        """A read's 304 for a record (see ``_unchanged``); None when the read goes on."""
        return _unchanged(request, record.etag, record.last_modified, _versioned(record))

    # --- pools --------------------------------------------------------------------------

    async def create_pool(self, request: Request) -> Response:
        return self._created(self.state.pools.create(await self._body(request)))

    async def list_pools(self, request: Request) -> Response:
        pools = [serialize.pool(pool) for pool in self.state.pools.all()]
        return self._list(pools, "pools", request)

    async def get_pool(self, request: Request) -> Response:
        pool = self.state.pools.get(request.path_params["pool_id"])
        if (unchanged := self._not_modified(pool, request)) is not None:
            return unchanged
        if request.method == "HEAD":
            return Response(status_code=200, headers=_versioned(pool))
        return self._entity(pool, serialize.pool(pool), "pools", request)

    async def update_pool(self, request: Request) -> Response:
        """PATCH (200) or updateproperties (204), with the pool's ETag and DataServiceId."""
        pool_id, body = request.path_params["pool_id"], await self._body(request)
        self._precondition(self.state.pools.get(pool_id), request)
        replace = request.method == "POST"
        pool = self.state.pools.update(pool_id, body, replace)
        headers = {**_versioned(pool), "DataServiceId": pool.url}
        return Response(status_code=204 if replace else 200, headers=headers)

    async def delete_pool(self, request: Request) -> Response:
        pool_id = request.path_params["pool_id"]
        self._precondition(self.state.pools.get(pool_id), request)
        self.state.pools.delete(pool_id)
        return Response(status_code=202)

    async def list_nodes(self, request: Request) -> Response:
        nodes = self.state.pools.list_nodes(request.path_params["pool_id"])
        return self._list(nodes, "nodes", request, serialize.node)

    async def get_node(self, request: Request) -> Response:
        params = request.path_params
        node = self.state.pools.get_node(params["pool_id"], params["node_id"])
        return self._entity(node, serialize.node(node), "nodes", request)

    # --- node loss: removenodes, resize, stopresize, reboot, reimage -----------------------

    @staticmethod
    def _accepted(record: Entity) -> Response:
        """202 with the resource's ETag, Last-Modified and DataServiceId (the pool's, or a
        node's URL alone: nodes have no ETag)."""
        return Response(
            status_code=202, headers={**_versioned(record), "DataServiceId": record.url}
        )

    async def _optional_body(self, request: Request) -> Any:
        """The JSON body, or None when none was sent (reboot and reimage without options)."""
        return await self._body(request) if await request.body() else None

    async def remove_nodes(self, request: Request) -> Response:
        pool_id, body = request.path_params["pool_id"], await self._body(request)
        self._precondition(self.state.pools.get(pool_id), request)
        return self._accepted(self.state.nodes.remove(pool_id, body))

    async def resize_pool(self, request: Request) -> Response:
        pool_id, body = request.path_params["pool_id"], await self._body(request)
        self._precondition(self.state.pools.get(pool_id), request)
        return self._accepted(self.state.nodes.resize(pool_id, body))

    async def stop_resize_pool(self, request: Request) -> Response:
        pool_id = request.path_params["pool_id"]
        self._precondition(self.state.pools.get(pool_id), request)
        return self._accepted(self.state.nodes.stop_resize(pool_id))

    async def reboot_node(self, request: Request) -> Response:
        params, body = request.path_params, await self._optional_body(request)
        return self._accepted(self.state.nodes.reboot(params["pool_id"], params["node_id"], body))

    async def reimage_node(self, request: Request) -> Response:
        params, body = request.path_params, await self._optional_body(request)
        return self._accepted(self.state.nodes.reimage(params["pool_id"], params["node_id"], body))

    # --- node scheduling: disablescheduling, enablescheduling -----------------------------

    async def disable_node_scheduling(self, request: Request) -> Response:
        params, body = request.path_params, await self._optional_body(request)
        node = self.state.nodes.disable_scheduling(params["pool_id"], params["node_id"], body)
        return _operation(200, node, "disablescheduling")

    async def enable_node_scheduling(self, request: Request) -> Response:
        params = request.path_params
        node = self.state.nodes.enable_scheduling(params["pool_id"], params["node_id"])
        return _operation(200, node, "enablescheduling")

    # --- autoscale: evaluateautoscale, enableautoscale, disableautoscale -------------------

    @staticmethod
    def _done(record: Entity) -> Response:
        """200 with the pool's ETag, Last-Modified and DataServiceId."""
        return Response(
            status_code=200, headers={**_versioned(record), "DataServiceId": record.url}
        )

    async def evaluate_autoscale(self, request: Request) -> Response:
        pool_id = request.path_params["pool_id"]
        run = self.state.autoscale.evaluate(pool_id, await self._body(request))
        pool = self.state.pools.get(pool_id)
        body = {
            "odata.metadata": f"{self.state.account_url}/$metadata"
            "#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun",
            **serialize.autoscale_run(run),
        }
        headers = {**_versioned(pool), "DataServiceId": pool.url}
        return JSONResponse(body, media_type=wire.JSON_CONTENT_TYPE, headers=headers)

    async def enable_autoscale(self, request: Request) -> Response:
        pool_id, body = request.path_params["pool_id"], await self._body(request)
        self._precondition(self.state.pools.get(pool_id), request)
        return self._done(self.state.autoscale.enable(pool_id, body))

    async def disable_autoscale(self, request: Request) -> Response:
        return self._done(self.state.autoscale.disable(request.path_params["pool_id"]))

    async def list_supported_images(self, request: Request) -> Response:
        images = self.state.pools.supported_images()
        return self._list(images, "supportedimages", request, serialize.supported_image)

    async def list_pool_node_counts(self, request: Request) -> Response:
        counts = self.state.pools.node_counts()
        return self._list(counts, "poolnodecounts", request, serialize.pool_node_counts)

    async def list_pool_usage_metrics(self, request: Request) -> Response:
        # The SDK sends startTime and endtime; older versions starttime: any case goes.
        query = {name.lower(): value for name, value in request.query_params.items()}
        start = _query_time(query, "startTime")
        end = _query_time(query, "endTime")
        usage = self.state.pools.usage_metrics(start, end)
        return self._list(usage, "poolusagemetrics", request, serialize.pool_usage)

    # --- jobs ---------------------------------------------------------------------------

    async def create_job(self, request: Request) -> Response:
        return self._created(self.state.jobs.create(await self._body(request)))

    async def list_jobs(self, request: Request) -> Response:
        return self._list(self.state.jobs.all(), "jobs", request, serialize.job)

    async def get_job(self, request: Request) -> Response:
        job = self.state.jobs.get(request.path_params["job_id"])
        if (unchanged := self._not_modified(job, request)) is not None:
            return unchanged
        return self._entity(job, serialize.job(job), "jobs", request)

    async def update_job(self, request: Request) -> Response:
        """PATCH changes what it gives; PUT replaces (what it does not give is reset)."""
        job_id, body = request.path_params["job_id"], await self._body(request)
        self._precondition(self.state.jobs.get(job_id), request)
        job = self.state.jobs.update(job_id, body, replace=request.method == "PUT")
        return Response(status_code=200, headers={**_versioned(job), "DataServiceId": job.url})

    async def delete_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        self._precondition(self.state.jobs.get(job_id), request)
        self.state.jobs.delete(job_id, _force(request))
        return Response(status_code=202)

    async def terminate_job(self, request: Request) -> Response:
        raw = await request.body()
        reason = None
        if raw:
            body = await self._body(request)
            reason = body.get("terminateReason") if isinstance(body, dict) else None
        job_id = request.path_params["job_id"]
        self._precondition(self.state.jobs.get(job_id), request)
        self.state.jobs.terminate(job_id, reason, _force(request))
        return Response(status_code=202)

    async def disable_job(self, request: Request) -> Response:
        job_id, body = request.path_params["job_id"], await self._body(request)
        self._precondition(self.state.jobs.get(job_id), request)
        return _operation(202, self.state.jobs.disable(job_id, body), "disable")

    async def enable_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        self._precondition(self.state.jobs.get(job_id), request)
        return _operation(202, self.state.jobs.enable(job_id), "enable")

    async def list_preparation_status(self, request: Request) -> Response:
        job, statuses = self.state.jobs.preparation_status(request.path_params["job_id"])
        collection = "jobpreparationandreleasestatuslist"
        return self._list(
            statuses, collection, request, lambda status: serialize.preparation_status(status, job)
        )

    async def task_counts(self, request: Request) -> Response:
        counts = self.state.jobs.task_counts(request.path_params["job_id"])
        return JSONResponse(serialize.task_counts(counts), media_type=wire.JSON_CONTENT_TYPE)

    # --- job schedules --------------------------------------------------------------------

    async def create_job_schedule(self, request: Request) -> Response:
        return self._created(self.state.schedules.create(await self._body(request)))

    async def list_job_schedules(self, request: Request) -> Response:
        schedules = self.state.schedules.all()
        return self._list(schedules, "jobschedules", request, serialize.job_schedule)

    async def get_job_schedule(self, request: Request) -> Response:
        schedule = self.state.schedules.get(request.path_params["schedule_id"])
        if (unchanged := self._not_modified(schedule, request)) is not None:
            return unchanged
        if request.method == "HEAD":
            return Response(status_code=200, headers=_versioned(schedule))
        document = serialize.job_schedule(schedule)
        return self._entity(schedule, document, "jobschedules", request)

    async def update_job_schedule(self, request: Request) -> Response:
        """PATCH changes what it gives; PUT replaces."""
        schedule_id, body = request.path_params["schedule_id"], await self._body(request)
        self._precondition(self.state.schedules.get(schedule_id), request)
        replace = request.method == "PUT"
        schedule = self.state.schedules.update(schedule_id, body, replace)
        headers = {**_versioned(schedule), "DataServiceId": schedule.url}
        return Response(status_code=200, headers=headers)

    async def delete_job_schedule(self, request: Request) -> Response:
        schedule_id = request.path_params["schedule_id"]
        self._precondition(self.state.schedules.get(schedule_id), request)
        self.state.schedules.delete(schedule_id)
        return Response(status_code=202)

    async def job_schedule_action(self, request: Request) -> Response:
        """disable, enable (204) and terminate (202)."""
        schedule_id, action = request.path_params["schedule_id"], request.path_params["action"]
        operation = {
            "disable": self.state.schedules.disable,
            "enable": self.state.schedules.enable,
            "terminate": self.state.schedules.terminate,
        }.get(action)
        if operation is None:
            raise errors.InvalidUri()
        self._precondition(self.state.schedules.get(schedule_id), request)
        return _operation(202 if action == "terminate" else 204, operation(schedule_id), action)

    async def list_jobs_from_schedule(self, request: Request) -> Response:
        jobs = self.state.schedules.jobs_of(request.path_params["schedule_id"])
        return self._list(jobs, "jobs", request, serialize.job)

    # --- tasks --------------------------------------------------------------------------

    async def create_task(self, request: Request) -> Response:
        task = self.state.tasks.add(request.path_params["job_id"], await self._body(request))
        return self._created(task)

    async def create_task_collection(self, request: Request) -> Response:
        results = self.state.tasks.add_collection(
            request.path_params["job_id"], await self._body(request)
        )
        body = {"value": [serialize.add_task_result(result) for result in results]}
        return JSONResponse(body, media_type=wire.JSON_CONTENT_TYPE)

    async def list_tasks(self, request: Request) -> Response:
        tasks = self.state.tasks.all(request.path_params["job_id"])
        return self._list(tasks, "tasks", request, serialize.task)

    async def get_task(self, request: Request) -> Response:
        task = self._task(request)
        if (unchanged := self._not_modified(task, request)) is not None:
            return unchanged
        return self._entity(task, serialize.task(task), "tasks", request)

    async def update_task(self, request: Request) -> Response:
        self._precondition(self._task(request), request)
        params, body = request.path_params, await self._body(request)
        task = self.state.tasks.update(params["job_id"], params["task_id"], body)
        return Response(status_code=200, headers={**_versioned(task), "DataServiceId": task.url})

    async def delete_task(self, request: Request) -> Response:
        self._precondition(self._task(request), request)
        self.state.tasks.delete(request.path_params["job_id"], request.path_params["task_id"])
        return Response(status_code=200)

    async def terminate_task(self, request: Request) -> Response:
        self._precondition(self._task(request), request)
        self.state.tasks.terminate(request.path_params["job_id"], request.path_params["task_id"])
        return Response(status_code=204)

    async def reactivate_task(self, request: Request) -> Response:
        self._precondition(self._task(request), request)
        self.state.tasks.reactivate(request.path_params["job_id"], request.path_params["task_id"])
        return Response(status_code=204)

    def _task(self, request: Request) -> Task:
        return self.state.tasks.get(request.path_params["job_id"], request.path_params["task_id"])

    # --- task files ---------------------------------------------------------------------

    def _task_directory(self, request: Request) -> tuple[Task, Path]:
        task = self._task(request)
        if task.node is None:
            raise errors.FileNotFound()
        root = node_root(self.data, task.node.pool_id, task.node.node_id)
        return task, task_directory(root, task.job_id, task.id)

    async def list_task_files(self, request: Request) -> Response:
        task, directory = self._task_directory(request)
        return self._list_files(task.url, directory, request)

    async def get_task_file(self, request: Request) -> Response:
        task, directory = self._task_directory(request)
        return self._file(task.url, directory, request)

    # --- node files: the start task's output, each task's directory ---------------------

    def _node_directory(self, request: Request) -> tuple[str, Path]:
        params = request.path_params
        node = self.state.pools.get_node(params["pool_id"], params["node_id"])
        return node.url, node_root(self.data, node.pool_id, node.id)

    async def list_node_files(self, request: Request) -> Response:
        node_url, root = self._node_directory(request)
        return self._list_files(node_url, root, request)

    async def get_node_file(self, request: Request) -> Response:
        node_url, root = self._node_directory(request)
        return self._file(node_url, root, request)

    def _list_files(self, owner_url: str, directory: Path, request: Request) -> Response:
        """The files below a task's or a node's directory (``recursive``: all the way)."""
        recursive = request.query_params.get("recursive", "false").lower() == "true"
        paths = sorted(directory.rglob("*") if recursive else directory.glob("*"))
        files = [
            _file_entry(owner_url, path.relative_to(directory).as_posix(), path) for path in paths
        ]
        return self._list(files, "files", request)

    @staticmethod
    def _file(owner_url: str, directory: Path, request: Request) -> Response:
        """GET (the content) or HEAD (the properties) of a file below ``directory``."""
        name = request.path_params["file_path"]
        path = (directory / name).resolve()
        if not path.is_relative_to(directory.resolve()) or not path.exists():
            raise errors.FileNotFound()
        headers = _file_headers(owner_url, name, path)
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        dated = {"Last-Modified": headers["Last-Modified"]}
        if (unchanged := _unchanged(request, None, modified, dated, conditions.FILE)) is not None:
            return unchanged
        if request.method == "HEAD" or path.is_dir():
            return Response(status_code=200, headers=headers)
        return FileResponse(path, headers=headers, media_type=headers["Content-Type"])

    # --- routing ------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        table: list[tuple[str, Handler, list[str]]] = [
            ("/pools", self.create_pool, ["POST"]),
            ("/pools", self.list_pools, ["GET"]),
            ("/pools/{pool_id}", self.get_pool, ["GET", "HEAD"]),
            ("/pools/{pool_id}", self.delete_pool, ["DELETE"]),
            ("/pools/{pool_id}", self.update_pool, ["PATCH"]),
            ("/pools/{pool_id}/updateproperties", self.update_pool, ["POST"]),
            ("/pools/{pool_id}/nodes", self.list_nodes, ["GET"]),
            ("/pools/{pool_id}/nodes/{node_id}", self.get_node, ["GET"]),
            ("/pools/{pool_id}/removenodes", self.remove_nodes, ["POST"]),
            ("/pools/{pool_id}/resize", self.resize_pool, ["POST"]),
            ("/pools/{pool_id}/stopresize", self.stop_resize_pool, ["POST"]),
            ("/pools/{pool_id}/evaluateautoscale", self.evaluate_autoscale, ["POST"]),
            ("/pools/{pool_id}/enableautoscale", self.enable_autoscale, ["POST"]),
            ("/pools/{pool_id}/disableautoscale", self.disable_autoscale, ["POST"]),
            ("/pools/{pool_id}/nodes/{node_id}/reboot", self.reboot_node, ["POST"]),
            ("/pools/{pool_id}/nodes/{node_id}/reimage", self.reimage_node, ["POST"]),
            (
                "/pools/{pool_id}/nodes/{node_id}/disablescheduling",
                self.disable_node_scheduling,
                ["POST"],
            ),
            (
                "/pools/{pool_id}/nodes/{node_id}/enablescheduling",
                self.enable_node_scheduling,
                ["POST"],
            ),
            ("/pools/{pool_id}/nodes/{node_id}/files", self.list_node_files, ["GET"]),
            (
                "/pools/{pool_id}/nodes/{node_id}/files/{file_path:path}",
                self.get_node_file,
                ["GET", "HEAD"],
            ),
            ("/supportedimages", self.list_supported_images, ["GET"]),
            ("/nodecounts", self.list_pool_node_counts, ["GET"]),
            ("/poolusagemetrics", self.list_pool_usage_metrics, ["GET"]),
            ("/jobs", self.create_job, ["POST"]),
            ("/jobs", self.list_jobs, ["GET"]),
            ("/jobs/{job_id}", self.get_job, ["GET"]),
            ("/jobs/{job_id}", self.update_job, ["PATCH", "PUT"]),
            ("/jobs/{job_id}", self.delete_job, ["DELETE"]),
            ("/jobs/{job_id}/terminate", self.terminate_job, ["POST"]),
            ("/jobs/{job_id}/disable", self.disable_job, ["POST"]),
            ("/jobs/{job_id}/enable", self.enable_job, ["POST"]),
            ("/jobs/{job_id}/taskcounts", self.task_counts, ["GET"]),
            (
                "/jobs/{job_id}/jobpreparationandreleasetaskstatus",
                self.list_preparation_status,
                ["GET"],
            ),
            ("/jobschedules", self.create_job_schedule, ["POST"]),
            ("/jobschedules", self.list_job_schedules, ["GET"]),
            ("/jobschedules/{schedule_id}", self.get_job_schedule, ["GET", "HEAD"]),
            ("/jobschedules/{schedule_id}", self.update_job_schedule, ["PATCH", "PUT"]),
            ("/jobschedules/{schedule_id}", self.delete_job_schedule, ["DELETE"]),
            ("/jobschedules/{schedule_id}/jobs", self.list_jobs_from_schedule, ["GET"]),
            ("/jobschedules/{schedule_id}/{action}", self.job_schedule_action, ["POST"]),
            ("/jobs/{job_id}/tasks", self.create_task, ["POST"]),
            ("/jobs/{job_id}/tasks", self.list_tasks, ["GET"]),
            ("/jobs/{job_id}/addtaskcollection", self.create_task_collection, ["POST"]),
            ("/jobs/{job_id}/tasks/{task_id}", self.get_task, ["GET"]),
            ("/jobs/{job_id}/tasks/{task_id}", self.delete_task, ["DELETE"]),
            ("/jobs/{job_id}/tasks/{task_id}", self.update_task, ["PUT"]),
            ("/jobs/{job_id}/tasks/{task_id}/terminate", self.terminate_task, ["POST"]),
            ("/jobs/{job_id}/tasks/{task_id}/reactivate", self.reactivate_task, ["POST"]),
            ("/jobs/{job_id}/tasks/{task_id}/files", self.list_task_files, ["GET"]),
            (
                "/jobs/{job_id}/tasks/{task_id}/files/{file_path:path}",
                self.get_task_file,
                ["GET", "HEAD"],
            ),
        ]
        by_path: dict[str, dict[str, Handler]] = {}
        for path, handler, methods in table:
            for method in methods:
                by_path.setdefault(path, {})[method] = handler
        every_verb = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        routes = [
            Route(path, self._wrap(self._dispatch(handlers)), methods=every_verb)
            for path, handlers in by_path.items()
        ]
        return [*routes, Route("/{path:path}", self._wrap(_unknown), methods=every_verb)]

    @staticmethod
    def _dispatch(handlers: dict[str, Handler]) -> Handler:
        async def dispatch(request: Request) -> Response:
            handler = handlers.get(request.method)
            if handler is None:
                raise errors.UnsupportedHttpVerb()
            return await handler(request)

        return dispatch


async def _unknown(request: Request) -> Response:
    raise errors.InvalidUri()


def _as_sent(request: Request) -> str:
    """The URL exactly as the client sent it (percent-encoding kept): what it signed."""
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{request.url.scheme}://{request.url.netloc}{path}" + (f"?{query}" if query else "")


def _unchanged(
    request: Request,
    etag: str | None,
    last_modified: datetime | None,
    headers: dict[str, str],
    supported: frozenset[str] = conditions.ENTITY,
) -> Response | None:
    """A read's 304, with no body and ``headers``, when its conditional headers say the
    client's copy is current; None when the read goes on (or raise its 412)."""
    try:
        conditions.check(request.headers, etag, last_modified, read=True, supported=supported)
    except conditions.NotModified:
        return Response(status_code=304, headers=headers)
    return None


def _versioned(record: Entity) -> dict[str, str]:
    """ETag and Last-Modified headers, for the records that have them (nodes have not)."""
    if record.etag is None or record.last_modified is None:
        return {}
    return {"ETag": record.etag, "Last-Modified": wire.http_date(record.last_modified)}


def _operation(status: int, record: Entity, name: str) -> Response:
    """The answer to an action on a resource: its ETag and Last-Modified when it has them,
    and the action's URL as DataServiceId, as the service sends them (azure-sdk-for-python's
    recorded test_batch_jobs and test_batch_compute_nodes: .../jobs/{id}/disable 202,
    .../nodes/{id}/disablescheduling 200 without an ETag)."""
    headers = {**_versioned(record), "DataServiceId": f"{record.url}/{name}"}
    return Response(status_code=status, headers=headers)


def _force(request: Request) -> bool:
    """terminate and delete's ``force``: not waiting for the job's release tasks."""
    return request.query_params.get("force", "false").lower() == "true"


def _query_time(query: dict[str, str], name: str) -> datetime | None:
    """A date-time query parameter (``query`` keyed in lower case), UTC if it names no zone."""
    text = query.get(name.lower())
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise errors.InvalidQueryParameterValue(
            values=[("QueryParameterName", name), ("QueryParameterValue", text)]
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _file_entry(owner_url: str, name: str, path: Path) -> dict[str, Any]:
    stat = path.stat()
    modified = wire.timestamp(datetime.fromtimestamp(stat.st_mtime, UTC))
    entry: dict[str, Any] = {
        "name": name,
        "url": f"{owner_url}/files/{quote(name)}",
        "isDirectory": path.is_dir(),
        "properties": {
            # No creationTime: "not returned for files on Linux Compute Nodes" (FileProperties).
            "lastModified": modified,
            # int64 as a string: "format": "int64" on "type": "string" in the 2025-06-01
            # specification's FileProperties, "1813" in its Tasks_ListTaskFiles example.
            "contentLength": str(0 if path.is_dir() else stat.st_size),
            "contentType": "application/octet-stream",
            "fileMode": f"{stat.st_mode & 0o7777:o}",
        },
    }
    return entry


def _file_headers(owner_url: str, name: str, path: Path) -> dict[str, str]:
    stat = path.stat()
    content_type = "application/octet-stream"  # the service's, whatever the file's name
    return {
        "ocp-creation-time": wire.http_date(datetime.fromtimestamp(stat.st_ctime, UTC)),
        "ocp-batch-file-isdirectory": "true" if path.is_dir() else "false",
        "ocp-batch-file-url": f"{owner_url}/files/{quote(name)}",
        "ocp-batch-file-mode": f"{stat.st_mode & 0o7777:o}",
        "Content-Type": content_type,
        "Content-Length": str(0 if path.is_dir() else stat.st_size),
        "Last-Modified": wire.http_date(datetime.fromtimestamp(stat.st_mtime, UTC)),
    }
