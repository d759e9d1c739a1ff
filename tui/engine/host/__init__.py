"""The engine process. The only package of vramdeck that imports llama_cpp."""
