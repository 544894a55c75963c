"""The blob example: multi-megabyte payloads, fragmented and compressed by the transport."""
