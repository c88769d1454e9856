"""Media verification: perceptual hashes and recycled-footage search.

``phash`` hashes pictures (PDQ, its 8 rotations/flips, bars stripped, crop regions),
``neardup`` holds the rule for which hash pairs mean "the same picture" and an index of
pictures, ``hashindex`` is the exact Hamming search under both, and ``videohash`` treats
a video as a bag of sampled frames. Decoding of untrusted files is in ``imagedecode``
(pictures) and ``videohash`` (through PyAV).
"""
