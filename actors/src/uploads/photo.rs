//! Checking an uploaded photo: the type is read from the bytes, the whole
//! image is decoded (a header that says JPEG proves nothing), and what a
//! phone writes beside the pixels — EXIF with its GPS position, XMP,
//! comments, text chunks — is dropped before the photo is stored. A photo
//! whose EXIF says "rotate" is turned upright first, so it still shows the
//! right way up without the tag. Pure: no actor, no storage.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::jpeg::{markers, Jpeg};
use img_parts::png::Png;
use img_parts::Bytes;

use crate::domain::ImageType;

/// Largest photo accepted, in bytes.
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;
/// Largest side in pixels (a phone camera's 50 MP is about 8 200 × 6 150).
const MAX_SIDE: u32 = 10_000;
/// Most pixels an image may have (a phone's photos are 12–24 MP; a
/// 10 000 × 10 000 PNG of 400 KB would need 400 MB to decode).
pub const MAX_PIXELS: u64 = 25_000_000;
/// Most memory one decode may take: 25 MP of RGBA with room to spare.
const MAX_DECODE_BYTES: u64 = 4 * MAX_PIXELS + 16 * 1024 * 1024;
/// Quality of a photo re-encoded to turn it upright.
const UPRIGHT_QUALITY: u8 = 88;

/// A photo that decodes, without its metadata.
#[derive(Debug, Clone)]
pub struct Photo {
    /// JPEG or PNG.
    pub kind: ImageType,
    /// Width in pixels (upright).
    pub width: u32,
    /// Height in pixels (upright).
    pub height: u32,
    /// The bytes to store.
    pub bytes: Vec<u8>,
}

/// Why a photo was refused.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Over [`MAX_PHOTO_BYTES`].
    #[error("a photo is at most 2 MiB")]
    TooLarge,
    /// Neither JPEG nor PNG by its bytes.
    #[error("the body is not a JPEG or PNG image")]
    NotAnImage,
    /// Says JPEG or PNG but does not decode.
    #[error("the image does not decode: {0}")]
    Broken(String),
    /// Too many pixels to decode safely (told by the header, before decoding).
    #[error("an image is at most 25 megapixels and {MAX_SIDE} pixels on a side")]
    TooManyPixels,
}

/// Checks and cleans an uploaded photo.
pub fn check(bytes: &[u8]) -> Result<Photo, PhotoError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge);
    }
    let kind = match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => ImageType::Jpeg,
        Ok(ImageFormat::Png) => ImageType::Png,
        _ => return Err(PhotoError::NotAnImage),
    };
    let format = match kind {
        ImageType::Jpeg => ImageFormat::Jpeg,
        ImageType::Png => ImageFormat::Png,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // The header alone says how big the pixels would be: refuse a bomb
    // before a byte of it is decoded.
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(PhotoError::TooManyPixels);
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut decoded = image::DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    if orientation != image::metadata::Orientation::NoTransforms {
        decoded.apply_orientation(orientation);
        return upright(kind, &decoded);
    }
    Ok(Photo {
        kind,
        width: decoded.width(),
        height: decoded.height(),
        bytes: strip_metadata(kind, bytes)?,
    })
}

fn decode_error(e: image::ImageError) -> PhotoError {
    match e {
        image::ImageError::Limits(_) => PhotoError::TooManyPixels,
        other => PhotoError::Broken(other.to_string()),
    }
}

/// A turned photo, encoded anew (which writes no metadata at all).
fn upright(kind: ImageType, decoded: &image::DynamicImage) -> Result<Photo, PhotoError> {
    let mut out = Vec::new();
    match kind {
        ImageType::Jpeg => {
            let rgb = decoded.to_rgb8();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, UPRIGHT_QUALITY)
                .encode_image(&rgb)
                .map_err(|e| PhotoError::Broken(e.to_string()))?;
        }
        ImageType::Png => decoded
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .map_err(|e| PhotoError::Broken(e.to_string()))?,
    }
    Ok(Photo {
        kind,
        width: decoded.width(),
        height: decoded.height(),
        bytes: out,
    })
}

/// The same pixels without the segments or chunks that carry metadata:
/// JPEG APP1 (EXIF, XMP), APP13 (IPTC) and comments; PNG eXIf and text.
fn strip_metadata(kind: ImageType, bytes: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let broken = |e: img_parts::Error| PhotoError::Broken(e.to_string());
    let input = Bytes::copy_from_slice(bytes);
    let cleaned = match kind {
        ImageType::Jpeg => {
            let mut jpeg = Jpeg::from_bytes(input).map_err(broken)?;
            jpeg.segments_mut()
                .retain(|s| !matches!(s.marker(), markers::APP1 | markers::APP13 | markers::COM));
            jpeg.encoder().bytes()
        }
        ImageType::Png => {
            let mut png = Png::from_bytes(input).map_err(broken)?;
            png.chunks_mut()
                .retain(|c| !matches!(&c.kind(), b"eXIf" | b"tEXt" | b"iTXt" | b"zTXt"));
            png.encoder().bytes()
        }
    };
    Ok(cleaned.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| Rgb([x as u8, y as u8, 128]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .expect("encode");
        out
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode");
        out
    }

    /// A minimal little-endian TIFF/EXIF block: one IFD0 entry, the
    /// orientation, and a GPS IFD pointer (whose bytes stand for a position).
    fn exif(orientation: u16) -> Vec<u8> {
        let mut e = b"Exif\0\0II*\0\x08\0\0\0".to_vec();
        e.extend_from_slice(&2u16.to_le_bytes());
        e.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
        e.extend_from_slice(&orientation.to_le_bytes());
        e.extend_from_slice(&[0, 0]);
        e.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        e.extend_from_slice(&[0, 0, 0, 0]);
        e.extend_from_slice(b"GPS 31.0245N 121.4372E");
        e
    }

    fn with_exif(jpeg_bytes: &[u8], orientation: u16) -> Vec<u8> {
        let mut jpeg = Jpeg::from_bytes(Bytes::copy_from_slice(jpeg_bytes)).expect("jpeg");
        let segment = img_parts::jpeg::JpegSegment::new_with_contents(
            markers::APP1,
            Bytes::from(exif(orientation)),
        );
        jpeg.segments_mut().insert(1, segment);
        jpeg.encoder().bytes().to_vec()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_and_a_png_pass_with_their_size() {
        let photo = check(&jpeg(40, 30)).expect("jpeg");
        assert_eq!(
            (photo.kind, photo.width, photo.height),
            (ImageType::Jpeg, 40, 30)
        );
        let photo = check(&png(12, 9)).expect("png");
        assert_eq!(
            (photo.kind, photo.width, photo.height),
            (ImageType::Png, 12, 9)
        );
    }

    #[test]
    fn the_exif_position_is_gone_and_the_pixels_stay() {
        let original = jpeg(40, 30);
        let tagged = with_exif(&original, 1);
        assert!(contains(&tagged, b"GPS 31.0245N"));
        let photo = check(&tagged).expect("photo");
        assert!(!contains(&photo.bytes, b"GPS 31.0245N"));
        assert!(!contains(&photo.bytes, b"Exif\0\0"));
        // No re-encoding: exactly the original image data.
        assert_eq!(photo.bytes, original);
    }

    #[test]
    fn a_photo_taken_sideways_is_turned_upright_without_its_exif() {
        // Orientation 6: the camera was turned; viewers rotate 90° clockwise.
        let photo = check(&with_exif(&jpeg(40, 30), 6)).expect("photo");
        assert_eq!((photo.width, photo.height), (30, 40));
        assert!(!contains(&photo.bytes, b"GPS 31.0245N"));
        assert_eq!(check(&photo.bytes).expect("again").width, 30);
    }

    #[test]
    fn png_text_chunks_are_dropped() {
        let mut png_img = Png::from_bytes(Bytes::from(png(8, 8))).expect("png");
        let text = img_parts::png::PngChunk::new(*b"tEXt", Bytes::from_static(b"GPS\0here"));
        let at = png_img.chunks().len() - 1;
        png_img.chunks_mut().insert(at, text);
        let tagged = png_img.encoder().bytes().to_vec();
        assert!(contains(&tagged, b"GPS\0here"));
        let photo = check(&tagged).expect("photo");
        assert!(!contains(&photo.bytes, b"GPS\0here"));
    }

    /// A PNG whose header says `width` × `height` and whose pixels are a
    /// few zero rows: what a decompression bomb looks like to the header.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgba);
            let mut writer = encoder.write_header().expect("header");
            let row = vec![0u8; width as usize * 4];
            let mut stream = writer.stream_writer().expect("stream");
            for _ in 0..2 {
                std::io::Write::write_all(&mut stream, &row).expect("row");
            }
        }
        out
    }

    #[test]
    fn an_image_over_25_megapixels_is_refused_from_its_header() {
        // 5 001 × 5 000 is just over; its pixels are never decoded (only
        // two rows are there, which a decode would call broken).
        let bomb = png_claiming(5_001, 5_000);
        assert!(bomb.len() < MAX_PHOTO_BYTES);
        assert!(matches!(check(&bomb), Err(PhotoError::TooManyPixels)));
        let long = png_claiming(10_001, 10);
        assert!(matches!(check(&long), Err(PhotoError::TooManyPixels)));
        // Just under is decoded, and found broken.
        let under = png_claiming(5_000, 5_000);
        assert!(matches!(check(&under), Err(PhotoError::Broken(_))));
    }

    #[test]
    fn what_is_not_a_whole_image_is_refused() {
        assert!(matches!(check(b"GIF89a...."), Err(PhotoError::NotAnImage)));
        assert!(matches!(check(b"hello world"), Err(PhotoError::NotAnImage)));
        // A JPEG header with nothing behind it.
        let truncated = &jpeg(40, 30)[..40];
        assert!(matches!(check(truncated), Err(PhotoError::Broken(_))));
        let mut png_bytes = png(8, 8);
        png_bytes.truncate(png_bytes.len() / 2);
        assert!(matches!(check(&png_bytes), Err(PhotoError::Broken(_))));
        assert!(matches!(
            check(&vec![0xFF; MAX_PHOTO_BYTES + 1]),
            Err(PhotoError::TooLarge)
        ));
    }
}
