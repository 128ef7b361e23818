"""A zoo of small vision-language models built and trained from scratch on the world."""
