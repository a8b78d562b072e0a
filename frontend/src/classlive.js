// placeholder: filled by the classlive page's author
