"""Data: image datasets (Fashion-MNIST, folders, EDM zips), image files in and out, and the mask kinds."""
