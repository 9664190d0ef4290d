"""Deploying the app to a Hugging Face Space: config, README header, upload list, deploy, runtime."""
