"""Our agent with the offline scripted model, as a LangGraph server loads a graph.

``langgraph.json`` beside this file names ``graph`` below; both ``langgraph dev`` and
``durable-agent serve`` import it from there. It is compiled without a checkpointer or a
store on purpose: the server under test supplies persistence, and that is what the bench
measures. The offline model needs no key and answers the same way every time.
"""

from graphs.agent import build_agent
from graphs.offline import OfflineChatModel

graph = build_agent(OfflineChatModel()).compile()
