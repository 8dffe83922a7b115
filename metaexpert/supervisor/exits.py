"""Exit statuses of a supervised worker: how a process tells the supervisor why it ended."""

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_MEMORY = 70
EXIT_CONFIGURATION = 78
