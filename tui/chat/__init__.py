"""Conversations: messages and their figures. Imports no textual."""
