"""Where attachments' bytes live."""
