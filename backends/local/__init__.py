"""In-process engines (llama.cpp, MLX): one owner thread per loaded model, token
ids rendered by Lectern, and saved prefix states that make reopening instant."""
