"""``durable-agent serve``: the LangGraph Agent Server API on our durable storage.

The clients of the LangGraph ecosystem (``langgraph_sdk``, ``@langchain/langgraph-sdk``
and its ``useStream``, agent-chat-ui) work against it unchanged, on an embedded SQLite
file or PostgreSQL. Runs are rows and their stream events are rows, in the database of
the checkpoints, so a run survives the server itself. Which module owns what:

    app.py               the ASGI app, its start-up (recovery) and shutdown (drain)
    body_limit.py        the cap on a request body's size (413)
    context.py           what a handler reaches: the database, graphs, worker, the user
    registry.py          which graphs are served (``--graph``, ``langgraph.json``)
    bodies.py            request bodies;  shapes.py  what is sent back
    routes_*.py          the endpoints, by resource
    worker.py            which run rows this process takes, and when; recovery; draining
    execution.py         one run: claimed and finished under the thread's lease, its events
    body_limit.py        the cap on a request body's size
    stream_events.py     a graph's stream as the clients' events
    run_stream.py        a run's events as SSE, read from the rows; waiting for a run
    hub.py               wake-ups within one process;  thread_copy.py  copying a thread
"""
