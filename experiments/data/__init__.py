"""experiments.data: data sets (built-in, folders, your own loader), their loaders and augmentation.

Owns: ``DatasetConfig`` and loading a data set onto a device (datasets), ImageNet-layout folders
streamed and decoded in workers or on the device, with their bad-file checks (folder), batched
crop + flip + resize of images of any size (crops), batched on-device augmentation (augment), a
user's loader function (user_loader), and which part of the data a data-parallel worker takes
(shards). May import scaling/ only: no Ray, nothing else of experiments/.
"""
