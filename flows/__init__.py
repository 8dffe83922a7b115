"""Prefect flows: compose tasks, no business logic. One module per flow.

Importing any flow routes the library's and the experts' logs (``metaexpert.*``) to the run
logs (``tasks.logs.route_library_logs``)."""

from tasks.logs import route_library_logs

route_library_logs()
