"""Pieces of the editor page around the editor component: windowed audio reading and the side panels."""
