"""Quality of a quant against a reference file of the same model: KL divergence of the next-token
distributions, same top token, perplexity ratio (llama-perplexity --kl-divergence's figures)."""
