"""tinyaudio.runtime"""
