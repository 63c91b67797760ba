"""Backends that talk to a server: any OpenAI-compatible endpoint (the DeepSeek
API, vLLM, Ollama, LM Studio, llama.cpp's and mlx-lm's servers) and the probe
that finds such servers on loopback."""
