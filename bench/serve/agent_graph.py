"""Our agent with the offline scripted model, as a LangGraph server loads a graph.

``langgraph.json`` beside this file names ``graph`` below; both ``langgraph dev`` and
``durable-agent serve`` import it from there. It is compiled without a checkpointer or a
store on purpose: the server under test supplies persistence, and that is what the bench
measures. The offline model needs no key and answers the same way every time.
Importing it prints ``LOADED`` to stderr, which the bench checks for.
"""

import sys

from graphs.agent import build_agent
from graphs.offline import OfflineChatModel

# The bench looks for this line in each server's stderr: it proves the server answered
# through this file, not through a built-in agent that happens to answer the same way.
LOADED = "bench/serve/agent_graph.py loaded"

graph = build_agent(OfflineChatModel()).compile()
print(LOADED, file=sys.stderr, flush=True)
