"""Generation engines behind one Protocol (``service.engines.base.Engine``): embedded (transformers + peft
in-process) and vllm (a vLLM OpenAI server over HTTP)."""
