"""A small Open Images V6-format sample whose ground truth is known exactly.

Real OID needs hundreds of gigabytes and a download; the pipeline, its tests and the demo
need something that has every property of the real files that matters to a reader, on
a laptop, offline:

- the real file names, columns and formatting (no header in the class descriptions;
  coordinates as float32 fractions of the image width/height printed the way the
  public files print them, ``0.39166668``, ``1``; box flags 0/1 and -1 for unknown);
- real MIDs and display names, and a pruned copy of the real class hierarchy (children
  under ``Subcategory`` and ``Part``, some MIDs under two parents) shipped as package
  resources (``bigcat_ml/synthetic/resources``);
- several boxes per image, skewed class counts (big cats rare, Cat/Dog/Person common),
  portrait and landscape images of varied size, RGB, grayscale (L) and CMYK JPEGs, and
  JPEGs with an EXIF Orientation tag;
- faults: undecodable image bytes and annotated images that have no file at all.

Boxes always refer to the *displayed* image, i.e. after the EXIF Orientation is applied
(``PIL.ImageOps.exif_transpose``), as in real OID: an EXIF-rotated file stores its pixels
rotated, so a reader that ignores the tag crops the wrong place. Every box is at least
:data:`MIN_BOX_SIDE` pixels on each side of the displayed image and is painted with a
class-specific pattern (:func:`class_signature` is its mean colour), so a crop can be
checked by eye or by test.

The ground truth (``ground_truth.json``) counts images, boxes and image-level labels
per subset and class, and lists the faulty images, so tests know the chips and rejects
(:mod:`bigcat_ml.oid.rejects` reasons) a correct pipeline must produce.

The generator follows its data: :mod:`.catalogue` (classes, looks, embedded metadata),
:mod:`.plan` (images, boxes, labels and faults, before any pixel), :mod:`.render` (pixels
and JPEG bytes), :mod:`.ground_truth` (what a reader must find) and :mod:`.write` (the
files, written aside and published whole by :mod:`bigcat_ml.storage.publish`).
"""
