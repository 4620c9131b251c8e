"""tinyaudio.export"""
