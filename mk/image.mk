# The container image (Dockerfile), built with buildah without a registry (hack/image/).
.PHONY: image

image: build ## the image as an OCI archive (buildah; the last line printed is its path)
	@hack/image/build.sh
