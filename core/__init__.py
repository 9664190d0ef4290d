"""DeepSeek Playground core: models, loading, generation. Never imports gradio."""
