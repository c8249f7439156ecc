"""The Textual dashboard: widgets render models; keys send commands to the traced loop."""
